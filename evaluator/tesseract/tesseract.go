// Package tesseract adapts the Tesseract OCR command (Debian's
// tesseract-ocr with tesseract-ocr-eng) to qa.OCR: a bounded pool of
// `tesseract stdin stdout` processes, image bytes in, text out. A process
// per image costs ~0.3 s at 512 px; cgo bindings would save the start-up
// but tie the build to libtesseract's headers, and a stuck or crashing
// engine here is a killed process, not a crashed server.
package tesseract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/routelab/routelab/evaluator/qa"
)

// Reader runs Tesseract on images, at most Workers at a time.
type Reader struct {
	bin   string
	psm   int
	slots chan struct{}
}

var _ qa.OCR = (*Reader)(nil)

// PSMSparse is Tesseract's page segmentation mode 11, "sparse text": find
// as much text as possible in no particular order. Lettering in a picture
// is a few words anywhere, not a page.
const PSMSparse = 11

// ErrNotInstalled is returned by Find when no tesseract is on the PATH.
var ErrNotInstalled = errors.New("tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")

// Find returns the path of the tesseract command.
func Find() (string, error) {
	p, err := exec.LookPath("tesseract")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// New returns a Reader running bin with page segmentation mode psm, at most
// workers processes at once (at least 1). Each process is held to one
// thread (OMP_THREAD_LIMIT=1): the pool, not OpenMP, decides how many cores
// OCR takes from the serving path.
func New(bin string, workers, psm int) *Reader {
	return &Reader{bin: bin, psm: psm, slots: make(chan struct{}, max(1, workers))}
}

// Read returns the text Tesseract reads in img (PNG, JPEG or WebP bytes).
// It waits for a free worker; ctx bounds the wait and the run (the process
// is killed when ctx ends).
func (r *Reader) Read(ctx context.Context, img []byte) (string, error) {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("wait for a tesseract worker: %w", ctx.Err())
	}
	defer func() { <-r.slots }()
	cmd := exec.CommandContext(ctx, r.bin, "stdin", "stdout", "--psm", strconv.Itoa(r.psm))
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	cmd.Stdin = bytes.NewReader(img)
	cmd.WaitDelay = time.Second // a killed process's pipes close promptly
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("tesseract: %w", ctx.Err())
		}
		return "", fmt.Errorf("tesseract: %w: %s", err, lastLine(stderr.String()))
	}
	return out.String(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
