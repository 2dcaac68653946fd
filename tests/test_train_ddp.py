"""DistributedDataParallel through torchrun: 2 CPU processes with the gloo backend."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_training_runs_and_checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "-m", "training", "train", "--data", str(tmp_path), "--out", str(out),
               "--max-steps", "4", "--batch-size", "2", "--crop-size", "32", "--workers", "0", "--threads", "1",
               "--no-pretrained", "--decoder-width", "16", "--val-fraction", "0.25", "--val-every-steps", "2",
               "--freeze-encoder-fraction", "0.5", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world 2" in result.stderr
    checkpoint = torch.load(out / "final.pt", weights_only=True)
    assert checkpoint["step"] == 4
    assert not any(k.startswith("module.") for k in checkpoint["model"])  # saved unwrapped: export needs no DDP
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "val"] == [2, 4]  # only rank 0 writes
