"""``python -m cluster bench``: throughput, latency, failover and memory.

`run` drives a local cluster and reports; `loadgen` is the load generator
process (``python -m cluster.bench.loadgen``).

May import: `cluster.client`, `cluster.local`, and `viz.figures` for the latency
figure (it passes the samples; viz knows nothing of the cluster).
"""
