package upstream_test

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"

	asm "github.com/segmentio/asm/base64"
)

// BenchmarkPassThrough compares the two ways an image a vendor sent in
// base64 can reach a b64_json response: keep its text (a copy out of the
// pooled response body, then a copy into the response) or decode it and
// encode it again into the response buffer. Both decode, which QA needs.
func BenchmarkPassThrough(b *testing.B) {
	for _, n := range []int{5557, 1 << 20} { // the peer bench's PNG; a 1 MB photo
		img := make([]byte, n)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range img {
			img[i] = byte(r.Uint32())
		}
		v := []byte(base64.StdEncoding.EncodeToString(img))
		out := make([]byte, 0, 2*len(v))
		decode := func() []byte {
			dst := make([]byte, asm.StdEncoding.DecodedLen(len(v)))
			k, err := asm.StdEncoding.Decode(dst, v)
			if err != nil {
				b.Fatal(err)
			}
			return dst[:k]
		}
		b.Run("keep", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = decode()
				kept := string(v)
				out = append(out[:0], kept...)
			}
		})
		b.Run("reencode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				raw := decode()
				out = out[:asm.StdEncoding.EncodedLen(len(raw))]
				asm.StdEncoding.Encode(out, raw)
			}
		})
	}
}
