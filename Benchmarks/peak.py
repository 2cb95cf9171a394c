"""Peak resident memory of a child process, for the benchmark scripts."""
import time


def wait_with_peak(process):
    """Waits for `process` (a subprocess.Popen) to exit; returns its peak resident memory in KB.

    The peak is the child's own VmHWM, polled from /proc every 10 ms: getrusage(RUSAGE_CHILDREN)
    .ru_maxrss is no use here, because Linux carries the high-water mark of the memory a child had
    before exec (the Python parent's, shared through vfork) into it.
    """
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    return peak
