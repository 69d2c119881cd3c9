// Package compose_test checks docker-compose.yml without running it: the
// services the smoke test and the README count on, images that build.sh
// makes, NATS nodes that match cluster.conf, workers configured for a
// three-node cluster. smoke.sh runs the stack itself.
package compose_test

import (
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

type service struct {
	Image           string            `json:"image"`
	Command         []string          `json:"command"`
	Hostname        string            `json:"hostname"`
	Environment     map[string]string `json:"environment"`
	Volumes         []string          `json:"volumes"`
	Ports           []string          `json:"ports"`
	Restart         string            `json:"restart"`
	DependsOn       []string          `json:"depends_on"`
	StopGracePeriod string            `json:"stop_grace_period"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	Secrets         []string          `json:"secrets"`
}

type composeFile struct {
	Services map[string]service `json:"services"`
	Volumes  map[string]any     `json:"volumes"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
}

func load(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Drop the x- extension fields (anchors only) after the merge keys
	// have been resolved, then decode strictly: a misspelt key fails.
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for k := range raw {
		if strings.HasPrefix(k, "x-") {
			delete(raw, k)
		}
	}
	clean, _ := yaml.Marshal(raw)
	var c composeFile
	if err := yaml.UnmarshalStrict(clean, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// The worker's NATS password as a compose secret: its name, and the file
// it is made from, relative to this directory unless SECRETS_DIR is set.
const (
	workerPasswordSecret = "nats-worker-password"
	workerPasswordFile   = "${SECRETS_DIR:-./secrets}/" + workerPasswordSecret
)

func TestComposeFile(t *testing.T) {
	c := load(t)
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"clerk-emulator", "nats-1", "nats-2", "nats-3", "worker-1", "worker-2"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	buildSh, err := os.ReadFile(filepath.Join("..", "docker", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	built := strings.Fields(string(regexp.MustCompile(`(?m)^all=\(([^)]*)\)`).FindSubmatch(buildSh)[1]))
	clusterConf, err := os.ReadFile(filepath.Join("..", "nats", "cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}

	instances := map[string]bool{}
	for name, s := range c.Services {
		img := regexp.MustCompile(`^clerkjobs/([a-z-]+):\$\{TAG:-dev\}$`).FindStringSubmatch(s.Image)
		if img == nil || !slices.Contains(built, img[1]) {
			t.Errorf("%s: image %q is not one build.sh makes (nothing can be pulled)", name, s.Image)
		}
		if s.Restart == "" {
			t.Errorf("%s: no restart policy", name)
		}
		// A password in a variable is shown by docker inspect to anyone
		// who may use the engine, and inherited by every child process:
		// clients read theirs from a file (NATS_PASSWORD_FILE).
		if _, ok := s.Environment["NATS_PASSWORD"]; ok {
			t.Errorf("%s: NATS_PASSWORD is set: mount the password as a secret file and set NATS_PASSWORD_FILE", name)
		}
		// Every container writes only to its volumes, needs no capability
		// and may not gain privileges.
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: read_only %v, cap_drop %q, security_opt %q; want read_only, cap_drop ALL and no-new-privileges:true", name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		switch {
		case name == "clerk-emulator":
			// The key of .env is Clerk's (README: "To use Clerk itself, set
			// CLERK_SECRET_KEY"); the emulator, which stands in for Clerk
			// only when that is unset, must not be handed it.
			if k := s.Environment["CLERK_SECRET_KEY"]; strings.Contains(k, "${CLERK_SECRET_KEY") {
				t.Errorf("%s: CLERK_SECRET_KEY %q passes the Clerk key of .env to the emulator", name, k)
			}
		case strings.HasPrefix(name, "nats-"):
			if s.Hostname != name || s.Environment["NATS_SERVER_NAME"] != name {
				t.Errorf("%s: hostname %q, NATS_SERVER_NAME %q; want both %s", name, s.Hostname, s.Environment["NATS_SERVER_NAME"], name)
			}
			if !strings.Contains(string(clusterConf), "nats-route://"+name+":6222") {
				t.Errorf("cluster.conf has no route to %s", name)
			}
			if !slices.Equal(s.Command, []string{"--config", "/etc/nats/cluster.conf"}) {
				t.Errorf("%s: command %q", name, s.Command)
			}
			if !slices.Contains(s.Volumes, "../nats:/etc/nats:ro") || !slices.Contains(s.Volumes, name+":/data") {
				t.Errorf("%s: volumes %q; want the config read-only and a named volume on /data", name, s.Volumes)
			}
			if _, ok := c.Volumes[name]; !ok {
				t.Errorf("volume %s is not declared", name)
			}
			for _, pw := range []string{"WORKER", "SVC_A", "SVC_B", "OPS"} {
				v := s.Environment["CLERKJOBS_"+pw+"_PASSWORD"]
				if !strings.HasPrefix(v, "${CLERKJOBS_"+pw+"_PASSWORD:?") {
					t.Errorf("%s: CLERKJOBS_%s_PASSWORD = %q; want it required from the environment", name, pw, v)
				}
			}
		case strings.HasPrefix(name, "worker-"):
			e := s.Environment
			for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
				if !strings.Contains(e["NATS_URL"], "nats://"+n+":4222") {
					t.Errorf("%s: NATS_URL %q lacks %s", name, e["NATS_URL"], n)
				}
			}
			if e["WORKER_REPLY_PREFIX"] != "_INBOX." {
				t.Errorf("%s: WORKER_REPLY_PREFIX %q; want _INBOX. (answers only to inboxes)", name, e["WORKER_REPLY_PREFIX"])
			}
			if e["WORKER_REPLICAS"] != "3" || e["NATS_USER"] != "worker" {
				t.Errorf("%s: environment %v", name, e)
			}
			// The worker's password is the file the README's recipe
			// writes (TestEnvRecipeIsPrivate), mounted where
			// NATS_PASSWORD_FILE looks.
			if pf := e["NATS_PASSWORD_FILE"]; pf != "/run/secrets/"+workerPasswordSecret || !slices.Contains(s.Secrets, workerPasswordSecret) {
				t.Errorf("%s: NATS_PASSWORD_FILE %q, secrets %q; want /run/secrets/%s and that secret", name, pf, s.Secrets, workerPasswordSecret)
			}
			if f := c.Secrets[workerPasswordSecret].File; f != workerPasswordFile {
				t.Errorf("secret %s: file %q, want %q (where the README's recipe writes it)", workerPasswordSecret, f, workerPasswordFile)
			}
			// The limit follows the key (cmd/worker: 100/10s for a
			// development one): a value written here would hold the key
			// of .env (README: "To use Clerk itself, set
			// CLERK_SECRET_KEY"), most often a development one, to a
			// production one's, and the workers would draw 429s.
			if v, ok := e["WORKER_RATE_LIMIT"]; ok && v != "${WORKER_RATE_LIMIT:-}" {
				t.Errorf("%s: WORKER_RATE_LIMIT %q; want it unset, or ${WORKER_RATE_LIMIT:-} (from .env, else the key's default)", name, v)
			}
			if instances[e["WORKER_INSTANCE"]] || e["WORKER_INSTANCE"] == "" {
				t.Errorf("%s: WORKER_INSTANCE %q is empty or not unique", name, e["WORKER_INSTANCE"])
			}
			instances[e["WORKER_INSTANCE"]] = true
			drain, err1 := time.ParseDuration(e["WORKER_DRAIN_TIMEOUT"])
			grace, err2 := time.ParseDuration(s.StopGracePeriod)
			if err1 != nil || err2 != nil || grace < drain+5*time.Second {
				t.Errorf("%s: stop_grace_period %q must outlast WORKER_DRAIN_TIMEOUT %q", name, s.StopGracePeriod, e["WORKER_DRAIN_TIMEOUT"])
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("%s: want read_only and cap_drop ALL", name)
			}
			known := testenv.WorkerEnv(t)
			for k := range e {
				if !known[k] {
					t.Errorf("%s: env %s: the worker reads no such variable", name, k)
				}
			}
		}
	}
}

// docker-compose itself accepts the file, when it is installed.
func TestComposeConfig(t *testing.T) {
	var cmd *exec.Cmd
	if exec.Command("docker", "compose", "version").Run() == nil {
		cmd = exec.Command("docker", "compose", "-f", "docker-compose.yml", "config", "-q")
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command(p, "-f", "docker-compose.yml", "config", "-q")
	} else {
		t.Skip("neither docker compose nor docker-compose is installed")
	}
	cmd.Env = append(os.Environ(), "CLERKJOBS_WORKER_PASSWORD=a", "CLERKJOBS_SVC_A_PASSWORD=b",
		"CLERKJOBS_SVC_B_PASSWORD=c", "CLERKJOBS_OPS_PASSWORD=d")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	// And refuses to run without the passwords (unless a local .env
	// supplies them).
	if _, err := os.Stat(".env"); err == nil {
		return
	}
	cmd = exec.Command(cmd.Args[0], cmd.Args[1:]...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "CLERKJOBS_") })
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "set the passwords") {
		t.Errorf("compose config without passwords: %v\n%s", err, out)
	}
}

// The .env that deploy/README.md has an operator write holds every NATS
// password, and the Clerk key once Clerk itself is used: the recipe, run as
// it is written under the usual umask 022, leaves it readable by its owner
// alone, also over a .env an earlier recipe left readable by everyone (a
// redirect keeps an existing file's mode). It also writes the workers'
// password file, the compose secret: the worker's password of .env, on one
// line, readable by the worker's user 65532 in its container (a bind mount
// keeps the host's owner and mode: the "others" bits) and by no other local
// user (its directory is its owner's alone).
func TestEnvRecipeIsPrivate(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Everything between entering deploy/compose and starting the stack.
	lines := strings.Split(string(b), "\n")
	start := slices.Index(lines, "cd deploy/compose")
	end := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "docker-compose up") })
	if start < 0 || end < start {
		t.Fatal("deploy/README.md has no recipe between \"cd deploy/compose\" and \"docker-compose up\"")
	}
	recipe := strings.Join(lines[start+1:end], "\n")
	if !strings.Contains(recipe, "> .env") {
		t.Fatalf("deploy/README.md's recipe writes no .env:\n%s", recipe)
	}
	secretFile := strings.TrimPrefix(workerPasswordFile, "${SECRETS_DIR:-./secrets}/")
	for _, tt := range []struct {
		name   string
		before os.FileMode // of a .env already there; 0 for none
	}{
		{"no .env yet", 0},
		{"a .env readable by everyone", 0o644},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.before != 0 {
				if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("CLERKJOBS_OPS_PASSWORD=pold\n"), tt.before); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, ".env"), tt.before); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("sh", "-c", "umask 022\n"+recipe)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the README's recipe:\n%s\n%v: %s", recipe, err, out)
			}
			fi, err := os.Stat(filepath.Join(dir, ".env"))
			if err != nil {
				t.Fatalf("the README's recipe wrote no .env:\n%s", recipe)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("the README's recipe leaves .env %v, readable by others: its passwords (and Clerk key) are every local user's\n%s", fi.Mode().Perm(), recipe)
			}
			env, err := os.ReadFile(filepath.Join(dir, ".env"))
			if err != nil || strings.Count(string(env), "_PASSWORD=p") != 4 {
				t.Errorf("the README's recipe wrote %d passwords, want 4", strings.Count(string(env), "_PASSWORD=p"))
			}
			want := regexp.MustCompile(`(?m)^CLERKJOBS_WORKER_PASSWORD=(p[0-9a-f]+)$`).FindStringSubmatch(string(env))
			pw, err := os.ReadFile(filepath.Join(dir, "secrets", secretFile))
			switch {
			case err != nil:
				t.Errorf("the README's recipe wrote no secrets/%s for the workers (%v):\n%s", secretFile, err, recipe)
			case want == nil || string(pw) != want[1]+"\n":
				// Not shown: a password, even a test's.
				t.Errorf("secrets/%s (%d bytes) is not the worker's password of .env on one line", secretFile, len(pw))
			}
			if fi, err := os.Stat(filepath.Join(dir, "secrets")); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("the README's recipe leaves the secrets directory %v, open to others: the workers' password is every local user's\n%s", fi.Mode().Perm(), recipe)
			}
			if fi, err := os.Stat(filepath.Join(dir, "secrets", secretFile)); err == nil && fi.Mode().Perm()&0o004 == 0 {
				t.Errorf("secrets/%s is %v: the worker, user 65532 in its container, cannot read it through the bind mount", secretFile, fi.Mode().Perm())
			}
		})
	}
}

// TestReadmeSaysWhichContainersShowPasswords: docker inspect shows a
// container's variables to anyone who may use the Docker engine. The
// compose recipe in deploy/README.md says plainly which containers hold
// NATS passwords in theirs (the NATS servers: accounts.conf reads its
// environment) and that the workers' holds none; both stay true of
// docker-compose.yml. It said only that the workers' held none, which read
// as if the stack kept its passwords out of docker inspect.
func TestReadmeSaysWhichContainersShowPasswords(t *testing.T) {
	c := load(t)
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)\n## Run the whole stack\n.*?\n## `).FindString(string(b))
	section = strings.Join(strings.Fields(section), " ") // words, whatever the line breaks
	if !strings.Contains(section, "docker inspect") {
		t.Fatal(`deploy/README.md has no "Run the whole stack" section that names docker inspect`)
	}
	for name, s := range c.Services {
		var held []string
		for k := range s.Environment {
			if strings.HasSuffix(k, "_PASSWORD") {
				held = append(held, k)
			}
		}
		if len(held) == 0 {
			continue
		}
		slices.Sort(held)
		if strings.HasPrefix(name, "worker-") {
			t.Errorf("%s holds %v in its environment; the README says the workers' holds no password", name, held)
		}
		if !strings.Contains(section, "`"+name+"`") && !strings.Contains(section, "ps -q "+name+")") {
			t.Errorf("%s holds %v in its environment, which docker inspect shows; the README's compose recipe does not name it", name, held)
		}
	}
}

// TestReadmeSaysRoutesAreOpenToTheStack: the stack's services share one
// network (docker-compose.yml has no networks of its own, which load's
// strict decoding keeps so), and cluster.conf's routes carry no
// authorization: any container of the stack, the emulator too, can join
// as a route and hear every account, token replies included. The README
// says so, and cluster.conf no longer claims the stack keeps its routes on
// a network of their own.
func TestReadmeSaysRoutesAreOpenToTheStack(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("..", "nats", "cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^\s*authorization\s*[:{]`).Match(conf) || regexp.MustCompile(`(?m)^\s*tls\s*[:{]`).Match(conf) {
		t.Skip("cluster.conf authorizes its routes: the compose stack's network no longer matters")
	}
	words := strings.Join(strings.Fields(string(conf)), " ")
	if strings.Contains(words, "network of its own") {
		t.Error("cluster.conf says the compose stack keeps the routes on a network of their own; it shares one with the workers and the emulator")
	}
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)\n## Run the whole stack\n.*?\n## `).FindString(string(b))
	section = strings.Join(strings.Fields(section), " ")
	if !strings.Contains(section, "6222") || !strings.Contains(section, "join as a route") {
		t.Error(`deploy/README.md's "Run the whole stack" does not say that the routes (6222) are open to every container of the stack, which could join as a route`)
	}
}
