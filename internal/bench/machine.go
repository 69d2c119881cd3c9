package bench

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

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
	Module     string `json:"module,omitempty"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAvg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "MemTotal:") {
				m.MemTotalMiB = float64(kib(sc.Text())) / (1 << 20)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func versions(e *env) Versions {
	v := Versions{Go: runtime.Version(), NATSGo: nats.Version, NATSServer: server.VERSION + " (embedded)"}
	if e.srv == nil {
		v.NATSServer = e.nc.ConnectedServerVersion() + " (external)"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Module = bi.Main.Path
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Module += "@" + s.Value
			}
		}
	}
	return v
}
