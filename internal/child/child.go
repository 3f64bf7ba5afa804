// Package child runs a local server (clickhouse-server, redis-server) as a
// child process: in its own process group, killed if routelab dies, stopped
// once and in order.
package child

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a started child.
type Process struct {
	name     string
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// Start starts cmd in its own process group (a Ctrl-C to the terminal
// reaches routelab, which stops the child in order), killed if routelab
// dies without stopping it. name is the program, for errors.
func Start(name string, cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited, whether stopped or crashed.
func (p *Process) Done() <-chan struct{} { return p.done }

// WaitErr is how the process exited; valid once Done is closed.
func (p *Process) WaitErr() error { return p.waitErr }

// Stop sends SIGTERM and waits for the process to exit; if ctx ends first it
// kills the process. Calling Stop again returns the first result.
func (p *Process) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-ctx.Done():
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("%s killed after %w", p.name, ctx.Err())
		}
	})
	return p.stopErr
}

// Kill sends SIGKILL, as a crash or the OOM killer would, and waits for the
// process to exit.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// WaitReady polls ready every interval until it says yes, the process
// exits, or timeout passes.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, ready func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited during start: %v", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
