"""Side-by-side speed and memory of deepgrad against PyTorch (CPU), DeZero and hand-written NumPy.

    python -m benchmarks [--quick] [--only mlp,cnn] [--frameworks deepgrad,torch,dezero,numpy] [--threads 2]
                         [--rounds 3]
    deepgrad bench ...                     # the same

Each (framework, workload) runs in fresh processes (``benchmarks/child.py``) with the same float32
data, the same thread count (OMP/OpenBLAS/MKL variables and ``torch.set_num_threads``), some
warm-up steps and then timed repetitions of N steps; ``--rounds`` processes per pair, the
frameworks taking turns, and the table gives the median and the best over all repetitions. A training step is forward
+ backward + SGD update; an ``-eval`` step is one forward pass with no graph. The workloads are in
``benchmarks/workloads.py``; each framework is one module ``fw_NAME.py`` with

    build(workload, x, y) -> (step, n_params)   # step() runs one step and returns the loss (or output)
    VERSION                                     # and optionally set_threads(n)

raising NotImplementedError for a workload it does not have (reported as skipped). A framework that
also runs on a GPU lists ``DEVICES = ("cpu", "cuda")``, takes ``build(workload, x, y, device)`` and
provides ``synchronize(device)``, which the timer calls around every repetition
(``--device cuda``; the CPU-only frameworks are skipped then). torch and dezero
are optional (``pip install 'deepgrad[bench]'``); a framework that is not installed is skipped.
"""
