package natscluster_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/natscluster"
)

func TestDebugStartLoop(t *testing.T) {
	for i := range 6 {
		t.Run("", func(t *testing.T) {
			ctx := testContext(t, 45*time.Second)
			t.Cleanup(func() {
				if t.Failed() {
					out, _ := exec.Command("sh", "-c", "for c in $(docker ps -q --filter label=io.clerkjobs.natscluster); do docker kill -s QUIT $c; sleep 1; docker logs $c > /tmp/natsbuild/quit-$c.log 2>&1; done").CombinedOutput()
					t.Logf("quit: %s", out)
				}
			})
			c := natscluster.Start(ctx, t, natscluster.WithNodes(3))
			nc := c.Connect(t)
			js := newJS(t, nc)
			createStream(ctx, t, js, "X", 3)
			publishRange(ctx, t, js, "X", 0, 10)
			_ = i
			_ = os.Getpid
			_ = context.Background
		})
	}
}
