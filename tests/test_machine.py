"""The one-line machine description that records and benchmarks carry (ppo.lab.machine)."""

from ppo.lab.machine import cpu_name

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512bw

processor\t: 1
model name\t: another name
"""


def test_cpu_name_reads_the_first_processor_and_its_widest_vector_unit(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    name = cpu_name(tmp_path / "cpuinfo")
    assert name.startswith("AMD EPYC (family 25, model 17, AVX-512), ") and name.endswith(" cores")


def test_cpu_name_names_avx2_where_there_is_no_avx512(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO.replace(" avx512f avx512bw", ""))
    assert "(family 25, model 17, AVX2)" in cpu_name(tmp_path / "cpuinfo")


def test_cpu_name_without_cpuinfo_still_says_how_many_cores(tmp_path):
    name = cpu_name(tmp_path / "missing")
    assert name.endswith(" cores") and "family" not in name
