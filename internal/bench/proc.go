package bench

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// procSample is what /proc says about one process: CPU time (user +
// system, all threads) and resident memory.
type procSample struct {
	CPU time.Duration
	RSS int64 // bytes, now
	HWM int64 // bytes, peak since start or since resetPeak
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// readProc samples a process from /proc (Linux only).
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'. After it, utime (field 14) and stime (15) are at index 11
	// and 12.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration(ut+st) * clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	s.RSS, s.HWM = procField(status, "VmRSS:"), procField(status, "VmHWM:")
	return s, err
}

// selfCPU is the CPU time the bench process has used.
func selfCPU() time.Duration {
	s, _ := readProc(os.Getpid())
	return s.CPU
}

// resetPeak resets a process's VmHWM to its current RSS (Linux 4.0+), so
// that the next reading is the peak of what follows.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// procField reads a "Name:  123 kB" line of a /proc file, in bytes.
func procField(file []byte, name string) int64 {
	for line := range strings.Lines(string(file)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// Machine describes where a run happened.
type Machine struct {
	CPUModel    string  `json:"cpu_model"`
	Cores       int     `json:"cores"`
	MemTotalMiB float64 `json:"mem_total_mib"`
	Kernel      string  `json:"kernel"`
	OS          string  `json:"os"`
	LoadBefore  string  `json:"load_before"`
	LoadAfter   string  `json:"load_after"`
}

// Versions are the versions of what was measured.
type Versions struct {
	Go         string `json:"go"`
	NATSServer string `json:"nats_server"`
	NATSGo     string `json:"nats_go"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAvg()}
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(cpuinfo)) {
		if k, v, _ := strings.Cut(line, ":"); strings.TrimSpace(k) == "model name" {
			m.CPUModel = strings.TrimSpace(v)
			break
		}
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	m.MemTotalMiB = float64(procField(meminfo, "MemTotal:")) / (1 << 20)
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.Kernel = strings.TrimSpace(string(kernel))
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}
