"""GPU detection: nvidia-smi parsing and the CPU fallback."""

from __future__ import annotations

import subprocess

from gpu_agent.detect import CPU_FALLBACK, NVIDIA_SMI_ARGV, detect_hardware, parse_nvidia_smi

EIGHT_A100 = "\n".join(["NVIDIA A100-SXM4-80GB, 81920"] * 8) + "\n"


def test_parse_multi_gpu():
    assert parse_nvidia_smi(EIGHT_A100) == {"gpu_count": 8, "gpu_name": "NVIDIA A100-SXM4-80GB",
                                             "gpu_vram_gb": 80.0, "accelerator_type": "cuda",
                                             "hardware_type": "a100-80gb"}


def test_parse_single_gpu_with_blank_lines_and_spaces():
    hw = parse_nvidia_smi("\n  NVIDIA GeForce RTX 4090 ,  24564  \n\n")
    assert hw == {"gpu_count": 1, "gpu_name": "NVIDIA GeForce RTX 4090", "gpu_vram_gb": 24.0,
                  "accelerator_type": "cuda", "hardware_type": "rtx4090"}


def test_parse_name_with_comma_and_unknown_memory():
    hw = parse_nvidia_smi("Tesla V100, PCIe, [N/A]\nTesla V100, PCIe, [N/A]\n")
    assert hw["gpu_count"] == 2
    assert hw["gpu_name"] == "Tesla V100, PCIe"
    assert hw["gpu_vram_gb"] is None


def test_parse_empty_output_means_no_gpu():
    assert parse_nvidia_smi("") is None
    assert parse_nvidia_smi("\n \n") is None


def _fake_run(stdout="", returncode=0, exc=None):
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        if exc:
            raise exc
        return subprocess.CompletedProcess(argv, returncode, stdout=stdout, stderr="boom" if returncode else "")

    return run, calls


def test_detect_uses_nvidia_smi():
    run, calls = _fake_run(EIGHT_A100)
    assert detect_hardware(run=run)["gpu_count"] == 8
    assert calls == [NVIDIA_SMI_ARGV]


def test_detect_missing_nvidia_smi_falls_back_to_cpu():
    run, _ = _fake_run(exc=FileNotFoundError("nvidia-smi"))
    assert detect_hardware(run=run) == CPU_FALLBACK
    assert CPU_FALLBACK == {"gpu_count": 1, "gpu_name": "CPU", "gpu_vram_gb": None, "accelerator_type": "cpu",
                            "hardware_type": "cpu"}


def test_detect_failing_nvidia_smi_falls_back_to_cpu():
    run, _ = _fake_run(returncode=9)
    assert detect_hardware(run=run)["accelerator_type"] == "cpu"
    run, _ = _fake_run(exc=subprocess.TimeoutExpired(NVIDIA_SMI_ARGV, 20))
    assert detect_hardware(run=run)["accelerator_type"] == "cpu"


def test_gpu_count_override_replaces_detected_count():
    run, _ = _fake_run(EIGHT_A100)
    hw = detect_hardware(4, run=run)
    assert hw["gpu_count"] == 4 and hw["gpu_name"] == "NVIDIA A100-SXM4-80GB"
    run, _ = _fake_run(exc=FileNotFoundError())
    assert detect_hardware(2, run=run)["gpu_count"] == 2
    assert CPU_FALLBACK["gpu_count"] == 1  # the shared default is not mutated


def test_hardware_type_override_replaces_the_detected_one():
    run, _ = _fake_run(EIGHT_A100)
    assert detect_hardware(run=run, hardware_type_override="h100-80gb")["hardware_type"] == "h100-80gb"
