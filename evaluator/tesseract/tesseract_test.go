package tesseract_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/routelab/routelab/evaluator/qa"
	"github.com/routelab/routelab/evaluator/tesseract"
)

// lettering renders s in Go Bold, dark on light, as PNG bytes.
func lettering(t *testing.T, s string) []byte {
	t.Helper()
	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 40, DPI: 72})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 480, 100))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{240, 230, 200, 255}), image.Point{}, draw.Src)
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{30, 20, 60, 255}), Face: face, Dot: fixed.P(20, 65)}
	d.DrawString(s)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustFind(t *testing.T) string {
	t.Helper()
	bin, err := tesseract.Find()
	if err != nil {
		t.Skipf("%v; make test installs it", err)
	}
	return bin
}

func TestReadsRenderedLettering(t *testing.T) {
	r := tesseract.New(mustFind(t), 1, tesseract.PSMSparse)
	got, err := r.Read(context.Background(), lettering(t, "GRAND OPENING"))
	if err != nil {
		t.Fatal(err)
	}
	if l := qa.Legibility(got, []string{"GRAND OPENING"}); l < 0.9 {
		t.Errorf("Read(GRAND OPENING) = %q, legibility %.2f, want >= 0.9", got, l)
	}
}

func TestReadRejectsNonImages(t *testing.T) {
	r := tesseract.New(mustFind(t), 1, tesseract.PSMSparse)
	if got, err := r.Read(context.Background(), []byte("not an image")); err == nil {
		t.Errorf("Read(not an image) = %q, nil; want an error", got)
	}
}

// A Read that finds every worker busy waits for one, and gives up when its
// context ends without starting a process. The fake tesseract blocks on a
// FIFO until the test releases it.
func TestReadWaitsForAFreeWorker(t *testing.T) {
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	for _, p := range []string{started, release} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "tesseract")
	script := "#!/bin/sh\ncat >/dev/null\necho up > " + started + "\nread x < " + release + "\necho HELLO\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := tesseract.New(bin, 1, tesseract.PSMSparse)
	first := make(chan string, 1)
	go func() {
		s, err := r.Read(context.Background(), []byte("img"))
		if err != nil {
			s = err.Error()
		}
		first <- s
	}()
	if b, err := os.ReadFile(started); err != nil || strings.TrimSpace(string(b)) != "up" {
		t.Fatalf("first process did not start: %q, %v", b, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := r.Read(ctx, []byte("img"))
	if err == nil || !strings.HasPrefix(err.Error(), "wait for a tesseract worker") {
		t.Errorf("second Read with the only worker busy = %v, want it to give up waiting for a worker", err)
	}
	if err := os.WriteFile(release, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := <-first; got != "HELLO\n" {
		t.Errorf("first Read = %q, want HELLO", got)
	}
}
