// Command client-go-peer is a test peer for k8s-await-election's mixed-election tests: an
// elector built on client-go's tools/leaderelection with a LeaseLock, configured like the Go
// tool LINBIT/k8s-await-election (which it stands in for), written from client-go's documented
// API. It is test code only; the product stays pure Rust.
//
// Environment (names as the Go tool and k8s-await-election read them):
//
//	K8S_AWAIT_ELECTION_LOCK_NAME, _LOCK_NAMESPACE, _IDENTITY   required
//	K8S_AWAIT_ELECTION_LEASE_DURATION, _RENEW_DEADLINE, _RETRY_PERIOD
//	                  whole seconds (strconv.Atoi; unparsable values are ignored), 15/10/2
//	KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT   the API server
//	K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR   token and ca.crt (default: the in-cluster dir);
//	                  the token file is re-read as client-go's in-cluster config does
//	PEER_SHUTDOWN     go-tool (default) or cancel, see below
//
// The arguments are CMD and its arguments. CMD starts in OnStartedLeading (its own process
// group, stdin /dev/null, stdout/stderr inherited, SIGKILL when this process dies: the
// container's end takes the whole tree, as in a pod) and is SIGKILLed and reaped in
// OnStoppedLeading.
//
// PEER_SHUTDOWN=go-tool: the Go tool in a pod. It has no signal handling, so SIGTERM/SIGINT
// end it at once with status 2 (the Go runtime's exit) and, being PID 1, the kernel SIGKILLs
// the rest of the container: emulated here by SIGKILLing CMD's group and exiting 2; the Lease
// is not released. CMD's own exit ends the peer: 0 if CMD exited 0, else 1 (no release).
//
// PEER_SHUTDOWN=cancel: a well-behaved client-go user. SIGTERM/SIGINT stop CMD (SIGKILL, then
// wait until it is reaped) and only then cancel the context, so ReleaseOnCancel writes the
// release record (empty holder, leaseDurationSeconds 1); exit 0. CMD's own exit cancels too
// (exit 0 if CMD exited 0, else 1).
//
// Either way, losing the Lease (renew deadline passed) ends the process with status 1 once
// client-go has cancelled the leading context and CMD is gone, as the Go tool does.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

const prefix = "K8S_AWAIT_ELECTION_"

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "client-go-peer: "+format+"\n", args...)
}

func fatalf(code int, format string, args ...any) {
	logf(format, args...)
	os.Exit(code)
}

// seconds reads a timing variable as the Go tool does: whole seconds, ignored if unparsable.
func seconds(name string, def int) time.Duration {
	if v, err := strconv.Atoi(os.Getenv(prefix + name)); err == nil {
		return time.Duration(v) * time.Second
	}
	return time.Duration(def) * time.Second
}

func required(name string) string {
	v := os.Getenv(prefix + name)
	if v == "" {
		fatalf(1, "missing required environment variable: '%s%s'", prefix, name)
	}
	return v
}

// restConfig is rest.InClusterConfig with the service-account directory overridable.
func restConfig() *rest.Config {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		fatalf(1, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
	}
	dir := os.Getenv(prefix + "SERVICEACCOUNT_DIR")
	if dir == "" {
		dir = "/var/run/secrets/kubernetes.io/serviceaccount"
	}
	token, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		fatalf(1, "read token: %v", err)
	}
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(dir, "ca.crt")},
		BearerToken:     string(token),
		BearerTokenFile: filepath.Join(dir, "token"),
	}
}

// child is CMD while it runs.
type child struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool // killed by us, not exited on its own
}

func (c *child) start(argv []string) (*exec.Cmd, chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, nil, fmt.Errorf("stopping")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	c.cmd, c.done = cmd, make(chan struct{})
	return cmd, c.done, nil
}

// stop SIGKILLs CMD's process group and waits until CMD is reaped; later starts fail.
func (c *child) stop() {
	c.mu.Lock()
	c.stopped = true
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

func main() {
	argv := os.Args[1:]
	if len(argv) == 0 {
		fatalf(1, "Need at least one argument to run")
	}
	lockName, lockNS, identity := required("LOCK_NAME"), required("LOCK_NAMESPACE"), required("IDENTITY")
	mode := os.Getenv("PEER_SHUTDOWN")
	if mode == "" {
		mode = "go-tool"
	}
	if mode != "go-tool" && mode != "cancel" {
		fatalf(1, "PEER_SHUTDOWN=%q: expected go-tool or cancel", mode)
	}
	client, err := kubernetes.NewForConfig(restConfig())
	if err != nil {
		fatalf(1, "client: %v", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: lockName, Namespace: lockNS},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c child
	var mu sync.Mutex
	exitCode := 1 // unless a SIGTERM or CMD's exit ends the run

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		logf("received %v (%s)", s, mode)
		c.stop()
		if mode == "go-tool" {
			os.Exit(2)
		}
		mu.Lock()
		exitCode = 0
		mu.Unlock()
		cancel()
	}()

	logf("running client-go-peer as %q (%s)", identity, mode)
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            "client-go-peer",
		LeaseDuration:   seconds("LEASE_DURATION", 15),
		RenewDeadline:   seconds("RENEW_DEADLINE", 10),
		RetryPeriod:     seconds("RETRY_PERIOD", 2),
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				logf("started leading")
				cmd, done, err := c.start(argv)
				if err != nil {
					logf("start CMD: %v", err)
					return
				}
				go func() {
					<-lctx.Done()
					c.stop()
				}()
				werr := cmd.Wait()
				c.mu.Lock()
				stopped := c.stopped
				c.mu.Unlock()
				close(done)
				if stopped {
					return
				}
				code := 0
				if werr != nil {
					code = 1
				}
				logf("CMD exited: %v", werr)
				if mode == "go-tool" {
					os.Exit(code)
				}
				mu.Lock()
				exitCode = code
				mu.Unlock()
				c.stop()
				cancel()
			},
			OnStoppedLeading: func() {
				c.stop()
				logf("lost leader status")
			},
			OnNewLeader: func(id string) {
				logf("long live our new leader: '%s'!", id)
			},
		},
	})
	mu.Lock()
	code := exitCode
	mu.Unlock()
	logf("exiting with %d", code)
	os.Exit(code)
}
