package openai_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	pngenc "image/png"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/routelab/routelab/providers"
	"github.com/routelab/routelab/providers/openai"
)

// mockPNG draws the image the peer bench's mock (../shared/peers/mockimages)
// returns: a px×px gradient, or noise (incompressible, ~4·px² bytes).
func mockPNG(tb testing.TB, px int, noise bool) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, px, px))
	seed := uint32(2463534242)
	for y := range px {
		for x := range px {
			c := color.RGBA{uint8(x * 255 / px), uint8(y * 255 / px), 128, 255}
			if noise {
				seed ^= seed << 13
				seed ^= seed >> 17
				seed ^= seed << 5
				c = color.RGBA{uint8(seed), uint8(seed >> 8), uint8(seed >> 16), uint8(seed >> 24)}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := pngenc.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// cannedServer answers every HTTP/1.1 request on a kept-alive connection
// with the same prepared response, parsing no more of the request than its
// Content-Length: the cheapest server there is, so that a benchmark's CPU
// is the client's.
func cannedServer(tb testing.TB, body []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := textproto.NewReader(bufio.NewReader(c))
				for {
					if _, err := r.ReadLine(); err != nil { // request line
						return
					}
					h, err := r.ReadMIMEHeader()
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(h.Get("Content-Length"))
					if _, err := io.CopyN(io.Discard, r.R, int64(n)); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/v1"
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGenerate is one generation through the adapter against a canned
// server on loopback answering what the peer bench's mock answers
// (gradient-1024: a 5.6 kB PNG) or a 1 MB image (noise-512), from 16
// goroutines at once. cpu-ns/op is the process's CPU time (user+system,
// both ends of the socket) per call, which holds on a loaded machine where
// ns/op does not.
func BenchmarkGenerate(b *testing.B) {
	for _, tc := range []struct {
		name  string
		px    int
		noise bool
	}{{"gradient-1024", 1024, false}, {"noise-512", 512, true}} {
		b.Run(tc.name, func(b *testing.B) {
			img := mockPNG(b, tc.px, tc.noise)
			body := []byte(`{"created":1713833628,"data":[{"b64_json":"` + base64.StdEncoding.EncodeToString(img) + `"}]}`)
			url := cannedServer(b, body)
			c := openai.New(openai.Config{APIKey: "sk-test", BaseURL: url, Model: "gpt-image-1"})
			req := providers.Request{Prompt: "a small red square", Width: 1024, Height: 1024, N: 1, Quality: "standard"}
			if res, err := c.Generate(context.Background(), req); err != nil || !bytes.Equal(res.Images[0].Bytes, img) {
				b.Fatalf("Generate = %v; want the canned image", err)
			}
			b.ReportAllocs()
			b.SetParallelism(8) // 8×GOMAXPROCS goroutines: calls in flight as under load
			cpu0 := cpuNow()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Generate(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuNow()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
