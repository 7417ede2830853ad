"""MultiWorkerMirroredStrategy from TF_CONFIG: two worker processes on localhost (CPU) train LeNet-5 together on
the sample; both must end with identical weights, and only the chief writes metrics.json and the results record."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import sys
import numpy as np
import zoo
out, store, weights = sys.argv[1:4]
result = zoo.train("lenet5", strategy="multi-worker", batch_size=64, steps_per_epoch=3, max_steps=6, xla=False,
                   output=out, results=store, verbose=False)
np.savez(weights, *result.model.get_weights())
print("replicas", result.record["replicas"], "steps", result.steps)
"""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.timeout(300)
def test_two_workers_train_in_lockstep_and_only_the_chief_writes(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    out, store = tmp_path / "run", tmp_path / "results"
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(out), str(store), str(tmp_path / f"weights{index}.npz")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        logs = [w.communicate(timeout=240)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, log in zip(workers, logs):
        assert w.returncode == 0, log[-3000:]
        assert "replicas 2 steps 6" in log

    chief, other = (np.load(tmp_path / f"weights{i}.npz") for i in range(2))
    assert len(chief.files) == 10  # LeNet-5: 5 layers, kernel + bias each
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name])

    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["replicas"], metrics["steps"]) == ("multi-worker", 2, 6)
    assert metrics["device"].startswith("2 workers x CPU")
    records = list(store.glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text()) == metrics
