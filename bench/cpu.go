package bench

import (
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// processCPU is the user plus system CPU time this process has used, from
// getrusage: every goroutine of the process, load client and in-process
// servers alike.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU reads another process's user plus system CPU time from Linux's
// /proc/PID/stat, in clock ticks of 10ms.
func pidCPU(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	stat, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return time.Duration(stat.CPUTime() * float64(time.Second)), nil
}

// loadAverage is the machine's one-minute load average, 0 where unknown:
// the committed runs show how busy the machine was with other work.
var loadAverage = func() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return 0
	}
	return l.Load1
}
