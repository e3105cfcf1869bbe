"""Run `nv-edge` under an address-space limit (RLIMIT_AS, inherited by the scan's worker processes) and
print the peak resident memory of this process and of its children on the last line of stderr.

    python limited.py LIMIT_MB nv-edge-args...
    python limited.py LIMIT_MB --read-whole ORTHO.tif    (the control: read the whole ortho at once)
"""

import json
import resource
import sys

if __name__ == "__main__":
    limit = int(sys.argv[1]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if sys.argv[2] == "--read-whole":
        import rasterio

        with rasterio.open(sys.argv[3]) as src:
            try:
                src.read()
            except MemoryError:
                print("MemoryError", file=sys.stderr)
                sys.exit(3)
        sys.exit(0)
    from edge.cli.main import main

    code = main(sys.argv[2:])
    usage = {"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    print(json.dumps(usage), file=sys.stderr)
    sys.exit(code)
