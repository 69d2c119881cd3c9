package natscluster

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// EnvImage names the environment variable that selects a ready-made NATS
// image instead of building one, for example nats:2.12-alpine on a machine
// that can pull from Docker Hub. Both the official scratch and alpine images
// work: nodes are configured by a config file and a command line that starts
// with a flag, which both images' entrypoints accept.
const EnvImage = "CLERKJOBS_NATS_IMAGE"

const (
	natsServerModule = "github.com/nats-io/nats-server/v2"
	// imageRepo is the repository of the images this package builds; the
	// tag is the nats-server version from go.mod plus imageRecipe.
	imageRepo = "clerkjobs-natscluster/nats-server"
	// imageRecipe changes whenever the way the image is made changes, so
	// that images cached by older code are not reused.
	imageRecipe = "r1"
)

var imageState struct {
	sync.Mutex
	ref string
	err error
}

// natsImage returns the image reference for the nodes: the value of
// CLERKJOBS_NATS_IMAGE if set, or else an image built from the nats-server
// version in go.mod. The build happens at most once per test binary and is
// skipped when the engine already has the image (kept from an earlier run).
func natsImage(ctx context.Context, e *engine, logf func(string, ...any)) (string, error) {
	if ref := os.Getenv(EnvImage); ref != "" {
		return ref, nil
	}
	imageState.Lock()
	defer imageState.Unlock()
	if imageState.ref != "" || imageState.err != nil {
		return imageState.ref, imageState.err
	}
	ref, err := ensureImage(ctx, e, logf)
	if err != nil && ctx.Err() == nil {
		// Remember real failures (a broken build won't heal), not a
		// cancelled context of the first caller.
		imageState.err = err
	}
	imageState.ref = ref
	return ref, err
}

func ensureImage(ctx context.Context, e *engine, logf func(string, ...any)) (string, error) {
	version, local, err := natsServerVersion(ctx, e.goarch)
	if err != nil {
		return "", err
	}
	ref := imageRepo + ":" + version + "-" + imageRecipe
	if !local {
		img, err := e.cli.ImageInspect(ctx, ref)
		switch {
		case err == nil && img.Config != nil && img.Config.Labels[labelImage] == version:
			return ref, nil
		case err != nil && !cerrdefs.IsNotFound(err):
			return "", fmt.Errorf("natscluster: inspect image %s: %w", ref, err)
		}
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "natscluster-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// A static linux binary for the engine's architecture, from the
	// module cache, at the version in go.mod.
	bin := filepath.Join(dir, "nats-server")
	if _, err := goCommand(ctx, e.goarch, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, natsServerModule); err != nil {
		return "", err
	}
	if err := importImage(ctx, e.cli, bin, ref, version); err != nil {
		return "", err
	}
	if _, err := e.cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("natscluster: image %s missing after import: %w", ref, err)
	}
	logf("natscluster: built image %s in %s", ref, time.Since(start).Round(time.Millisecond))
	return ref, nil
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// natsServerVersion asks the go command which nats-server version the
// current module uses. local is true when go.mod replaces it with a local
// directory: such an image is rebuilt every time, since its tag can't
// tell one state of the directory from another.
func natsServerVersion(ctx context.Context, goarch string) (version string, local bool, err error) {
	out, err := goCommand(ctx, goarch, "list", "-m", "-f",
		"{{.Version}}|{{with .Replace}}{{.Path}}|{{.Version}}{{end}}", natsServerModule)
	if err != nil {
		return "", false, err
	}
	parts := strings.Split(strings.TrimSpace(string(out)), "|")
	version = parts[0]
	if len(parts) == 3 {
		if parts[2] == "" {
			return "dev", true, nil
		}
		version = parts[2] // replaced by another module version
	}
	if version == "" {
		return "", false, fmt.Errorf("natscluster: no version for %s in go.mod", natsServerModule)
	}
	return tagUnsafe.ReplaceAllString(version, "_"), false, nil
}

// goCommand runs the go command of the toolchain running the tests
// (go test puts its GOROOT/bin first on PATH) for the engine's platform.
func goCommand(ctx context.Context, goarch string, args ...string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("natscluster: the go command is needed to build nats-server: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("natscluster: go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// importImage turns the binary into an image with the engine's image import
// (docker import): a single-layer image holding /nats-server, with no
// builder, no base image and no registry involved. An imported image's
// creation time is the import time, so importing twice gives two image IDs.
func importImage(ctx context.Context, cli client.APIClient, bin, ref, version string) error {
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     "nats-server",
			Mode:     0o755,
			Size:     st.Size(),
			ModTime:  st.ModTime(),
		})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Message: "nats-server " + version + " built by internal/natscluster",
		Changes: []string{
			`ENTRYPOINT ["/nats-server"]`,
			`EXPOSE 4222 6222 8222`,
			fmt.Sprintf(`LABEL %s=%s %s=%s`, labelImage, version, labelRoot, "1"),
		},
	})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("natscluster: import image %s: %w", ref, err)
	}
	defer res.Close()
	// The body is a stream of JSON messages; a failure arrives as a message.
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("natscluster: import image %s: %w", ref, err)
		}
		if failure := cmp.Or(msg.Error, msg.ErrorDetail.Message); failure != "" {
			return fmt.Errorf("natscluster: import image %s: %s", ref, failure)
		}
	}
}
