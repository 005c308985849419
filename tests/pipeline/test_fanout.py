import threading
import time

import pytest

from modsent.pipeline.fanout import Device, FanoutError, Job, launch_command, parse_hostfile, run_jobs


def test_packs_jobs_on_free_devices_and_respects_deps():
    devices = [Device("localhost", i) for i in range(4)]
    active, peak, order, lock = [0], [0], [], threading.Lock()

    def work(name):
        def run(slice_, port):
            assert len(slice_) == 2 and port > 0
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                order.append(name)
            time.sleep(0.2)
            with lock:
                active[0] -= 1
        return run

    jobs = [Job("eng/train", work("eng/train"), devices=2, cost=1)]
    jobs += [Job(f"{lang}/train", work(f"{lang}/train"), devices=2, cost=cost)
             for lang, cost in (("deu", 1), ("fra", 5), ("rus", 3))]
    jobs += [Job(f"{lang}/align", work(f"{lang}/align"), devices=2, deps=[f"{lang}/train", "eng/train"])
             for lang in ("deu", "fra")]
    results = run_jobs(jobs, devices)
    assert all(r.status == "done" for r in results.values())
    assert peak[0] == 2  # 4 devices, 2 per job
    assert order.index("fra/train") < order.index("deu/train")  # costly first
    for lang in ("deu", "fra"):
        assert order.index(f"{lang}/align") > order.index(f"{lang}/train")


def test_failure_is_retried_then_reported_without_stopping_others():
    calls = {"bad": 0, "flaky": 0}

    def bad(slice_, port):
        calls["bad"] += 1
        raise RuntimeError("out of memory")

    def flaky(slice_, port):
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("node lost")

    jobs = [Job("bad", bad), Job("flaky", flaky), Job("ok", lambda s, p: None), Job("after-bad", lambda s, p: None,
                                                                                   deps=["bad"])]
    results = run_jobs(jobs, [Device("localhost", 0), Device("localhost", 1)], retries=1)
    assert results["bad"].status == "failed" and calls["bad"] == 2 and "out of memory" in results["bad"].error
    assert results["flaky"].status == "done" and results["flaky"].attempts == 2
    assert results["ok"].status == "done"
    assert results["after-bad"].status == "skipped" and "bad" in results["after-bad"].error


def test_too_few_devices_fails_before_any_work():
    ran = []
    with pytest.raises(FanoutError, match="needs 4 devices but only 2"):
        run_jobs([Job("a", lambda s, p: ran.append(1)), Job("big", lambda s, p: ran.append(2), devices=4)],
                 [Device("h", 0), Device("h", 1)])
    assert ran == []


def test_hostfile(tmp_path):
    path = tmp_path / "hostfile"
    path.write_text("# cluster\nnode1 slots=2\nnode2 slots=1  # half\n")
    assert parse_hostfile(path) == [Device("node1", 0), Device("node1", 1), Device("node2", 0)]
    path.write_text("node1 gpus=2\n")
    with pytest.raises(FanoutError, match=r"hostfile:1: expected 'HOST slots=N'"):
        parse_hostfile(path)


def test_launch_commands():
    gpu = launch_command(["modsent.cli", "train"], [Device("n1", 0), Device("n1", 1), Device("n2", 0)], 29501,
                         use_gpus=True, hostfile="hf")
    assert gpu[gpu.index("--include") + 1] == "n1:0,1@n2:0" and "--hostfile" in gpu and gpu[-2:] == ["modsent.cli",
                                                                                                    "train"]
    cpu = launch_command(["modsent.cli", "train"], [Device("localhost", 0), Device("localhost", 1)], 29502, False)
    assert cpu[cpu.index("--nproc_per_node") + 1] == "2" and cpu[cpu.index("--master_addr") + 1] == "127.0.0.1"


def test_cpu_threads_share_the_cores_among_concurrent_ranks_and_evaluation_takes_them_all():
    from modsent.pipeline.execute import cpu_threads

    assert cpu_threads("train", ranks_per_job=1, parallel_jobs=1, cores=2) == 2
    assert cpu_threads("align", ranks_per_job=1, parallel_jobs=2, cores=2) == 1
    assert cpu_threads("adapt", ranks_per_job=2, parallel_jobs=1, cores=16) == 8
    assert cpu_threads("train", ranks_per_job=2, parallel_jobs=2, cores=2) == 1  # never 0
    # evaluation waits for every training job: alone, it uses every core whatever the sharing
    assert cpu_threads("evaluate", ranks_per_job=2, parallel_jobs=2, cores=2) == 2
