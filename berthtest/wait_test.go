package berthtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/berthtest/wait"
)

func TestWaitStrategies(t *testing.T) {
	img := busybox(t)
	c := berthtest.Run(t, berth.Spec{
		Image: img,
		Cmd: []string{"sh", "-c", `echo starting; sleep 0.2; echo ready; echo ready
mkdir -p /www; echo hello >/www/index.html; exec httpd -f -p 8080 -h /www`},
		Ports: []berth.PortBinding{{ContainerPort: 8080}},
	},
		wait.ForLog("ready").WithOccurrence(2),
		wait.ForPort("8080/tcp"),
		wait.ForHTTP("/").WithResponseMatcher(func(b []byte) bool { return bytes.Contains(b, []byte("hello")) }),
		wait.ForExec("test", "-f", "/www/index.html"),
	)
	if c.HostPort("8080/tcp") == 0 || c.HostPort("8080") != c.HostPort("8080/tcp") {
		t.Fatalf("HostPort: %d, %d", c.HostPort("8080/tcp"), c.HostPort("8080"))
	}
	resp, err := http.Get("http://" + c.HostAddr("8080/tcp") + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "hello" {
		t.Fatalf("GET / = %q", body)
	}
	if !strings.Contains(c.Logs(), "starting") {
		t.Errorf("Logs() = %q", c.Logs())
	}
}

func TestWaitTimeoutShowsLogs(t *testing.T) {
	img := busybox(t)
	c := berthtest.Run(t, berth.Spec{Image: img, Cmd: []string{"sh", "-c", "echo first line; echo second line; exec sleep 1000"}},
		wait.ForLog("second line"))
	ctx := context.Background()
	for _, s := range []wait.Strategy{
		wait.ForLog("never printed").WithTimeout(100 * time.Millisecond),
		wait.ForPort("9999/tcp").WithTimeout(100 * time.Millisecond),
		wait.ForExec("false").WithTimeout(100 * time.Millisecond),
	} {
		err := s.WaitUntilReady(ctx, c.Container)
		var we *wait.Error
		if !errors.As(err, &we) || !errors.Is(err, wait.ErrTimeout) {
			t.Fatalf("%v: %v, want a timeout", s, err)
		}
		if !strings.Contains(err.Error(), "first line\nsecond line") || !strings.Contains(err.Error(), c.Name()) {
			t.Errorf("%v: the error does not show the log: %v", s, err)
		}
	}
}

func TestWaitSeesExit(t *testing.T) {
	img := busybox(t)
	ft := &fatalT{T: t}
	ft.run(func() {
		berthtest.Run(ft, berth.Spec{Image: img, Cmd: []string{"sh", "-c", "echo going away; exit 3"}},
			wait.ForPort("80/tcp"))
	})
	if !strings.Contains(ft.msg, "exited with code 3") || !strings.Contains(ft.msg, "going away") {
		t.Fatalf("Run of a container that exits: %q", ft.msg)
	}
	// The same through ForLog, which follows the log to its end.
	c := berthtest.Run(t, berth.Spec{Image: img, Cmd: []string{"sh", "-c", "echo bye; exit 4"}})
	err := wait.ForLog("hello").WaitUntilReady(context.Background(), c.Container)
	if !errors.Is(err, wait.ErrExited) || !strings.Contains(err.Error(), "code 4") {
		t.Fatalf("ForLog on a container that exits: %v", err)
	}
}

func TestWaitBadInput(t *testing.T) {
	img := busybox(t)
	c := berthtest.Run(t, berth.Spec{Image: img, Cmd: []string{"sleep", "1000"}})
	ctx := context.Background()
	for _, p := range []wait.Port{"http", "0/tcp", "70000", "80/icmp"} {
		err := wait.ForPort(p).WaitUntilReady(ctx, c.Container)
		if !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("ForPort(%q): %v, want ErrInvalid", p, err)
		}
	}
	if _, err := wait.HostAddr(ctx, c.Container, "1234/tcp"); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("HostAddr of a port not published: %v", err)
	}
	ft := &fatalT{T: t}
	ft.run(func() { berthtest.Run(ft, berth.Spec{}) })
	if !strings.Contains(ft.msg, "Image is empty") {
		t.Errorf("Run without an image: %q", ft.msg)
	}
}
