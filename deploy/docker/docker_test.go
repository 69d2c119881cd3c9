// Package docker_test checks the Dockerfiles (always) and builds the images
// with build.sh (when a Docker engine answers; REQUIRE_DOCKER=1 turns a
// missing engine into a failure, -short skips the build).
package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// images lists what build.sh builds, from its own source.
func images(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^all=\(([^)]*)\)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("build.sh: no all=(...) list")
	}
	return strings.Fields(string(m[1]))
}

func TestDockerfiles(t *testing.T) {
	files, _ := filepath.Glob("*.Dockerfile")
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(f, ".Dockerfile"))
	}
	if want := images(t); !slices.Equal(slices.Sorted(slices.Values(want)), names) {
		t.Fatalf("build.sh builds %v, Dockerfiles are %v", want, names)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var instr []string
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				instr = append(instr, line)
			}
		}
		froms := slices.DeleteFunc(slices.Clone(instr), func(s string) bool { return !strings.HasPrefix(s, "FROM ") })
		// A base image would be pulled from a registry: none is reachable.
		if !slices.Equal(froms, []string{"FROM scratch"}) || instr[0] != "FROM scratch" {
			t.Errorf("%s: FROM lines %q, want only FROM scratch", f, froms)
		}
		if !slices.Contains(instr, "USER 65532:65532") {
			t.Errorf("%s: no USER 65532:65532", f)
		}
		if !slices.ContainsFunc(instr, func(s string) bool { return strings.HasPrefix(s, `ENTRYPOINT ["/`) }) {
			t.Errorf("%s: no exec-form ENTRYPOINT", f)
		}
		if !slices.Contains(instr, "COPY rootfs/ /") {
			t.Errorf("%s: does not copy rootfs/ (CA bundle, passwd)", f)
		}
	}
}

// requireDocker skips without a Docker engine, or fails with REQUIRE_DOCKER=1.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("REQUIRE_DOCKER") == "1" {
		t.Fatalf("REQUIRE_DOCKER=1 but no usable Docker engine: %v: %s", err, out)
	}
	t.Skipf("skipping: no usable Docker engine (set REQUIRE_DOCKER=1 to fail instead): %v", err)
}

// TestImagesBuild runs build.sh for every image, then checks each image:
// non-root, no shell, the CA bundle in place, and the binary runs.
func TestImagesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not building images")
	}
	requireDocker(t)
	tag := "test-" + strconv.Itoa(os.Getpid())
	names := images(t)
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command("docker", "rmi", "-f", "clerkjobs/"+n+":"+tag).Run()
		}
	})
	start := time.Now()
	cmd := exec.Command("bash", "build.sh")
	cmd.Env = append(os.Environ(), "TAG="+tag)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	t.Logf("build.sh built %d images in %s", len(names), time.Since(start).Round(time.Second))

	for _, n := range names {
		ref := "clerkjobs/" + n + ":" + tag
		out, err := exec.Command("docker", "image", "inspect", ref).Output()
		if err != nil {
			t.Fatalf("inspect %s: %v", ref, err)
		}
		var img []struct {
			Config struct {
				User       string
				Entrypoint []string
			}
		}
		if err := json.Unmarshal(out, &img); err != nil || len(img) != 1 {
			t.Fatalf("inspect %s: %v", ref, err)
		}
		if img[0].Config.User != "65532:65532" || len(img[0].Config.Entrypoint) != 1 {
			t.Errorf("%s: user %q, entrypoint %q", ref, img[0].Config.User, img[0].Config.Entrypoint)
		}
		files := exportedFiles(t, ref)
		for _, want := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", strings.TrimPrefix(img[0].Config.Entrypoint[0], "/")} {
			if !slices.Contains(files, want) {
				t.Errorf("%s lacks /%s", ref, want)
			}
		}
		for _, f := range files {
			if strings.HasPrefix(f, "bin/") || strings.HasSuffix(f, "/sh") {
				t.Errorf("%s holds %s: the image should have no shell", ref, f)
			}
		}
		// The binary runs, as 65532, on a read-only root.
		arg := "--help"
		if n == "nats-server" {
			arg = "--version"
		}
		if out, err := exec.Command("docker", "run", "--rm", "--read-only", "--network", "none", ref, arg).CombinedOutput(); err != nil {
			t.Errorf("docker run %s %s: %v\n%s", ref, arg, err, out)
		}
	}
}

// exportedFiles lists the regular files and symlinks of an image.
func exportedFiles(t *testing.T, ref string) []string {
	t.Helper()
	id, err := exec.Command("docker", "create", ref).Output()
	if err != nil {
		t.Fatalf("docker create %s: %v", ref, err)
	}
	cid := strings.TrimSpace(string(id))
	defer exec.Command("docker", "rm", cid).Run()
	tar, err := exec.Command("bash", "-c", "docker export "+cid+" | tar tf -").Output()
	if err != nil {
		t.Fatalf("docker export %s: %v", ref, err)
	}
	var files []string
	for _, f := range bytes.Split(bytes.TrimSpace(tar), []byte("\n")) {
		if s := string(f); !strings.HasSuffix(s, "/") {
			files = append(files, s)
		}
	}
	return files
}
