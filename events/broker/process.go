package broker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Ready is the line `routelab kafka --json` prints on stdout once the
// broker accepts connections; StartProcess waits for it.
type Ready struct {
	DataDir string `json:"data_dir"`
	Kafka   string `json:"kafka"`
}

// StartProcess runs a broker in a child process, `exe kafka --json` (exe
// is the routelab binary) on 127.0.0.1 with its data under dir and the
// collector target gcPercent, so its log sits in a heap of its own, as
// Kafka's would. It returns the broker's address and how to stop it
// (interrupt, then kill after 10 s).
func StartProcess(exe, dir string, gcPercent int) (string, func(), error) {
	cmd := exec.Command(exe, "kafka", "--json", "--kafka-addr", "127.0.0.1:0", "--data-dir", dir, "--gc-percent", strconv.Itoa(gcPercent))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var info Ready
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &info)
	}
	if err != nil || info.Kafka == "" {
		stop()
		return "", nil, fmt.Errorf("routelab kafka did not report its address: %v", err)
	}
	return info.Kafka, stop, nil
}
