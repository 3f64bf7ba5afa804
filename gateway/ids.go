package gateway

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
)

// IDs makes request ids: a per-process counter encrypted with a random
// per-process AES key. Ids are unique (AES is a permutation of the counter;
// across replicas, keys differ and 128-bit collisions are negligible), cost
// no syscall, and cannot be guessed from another id: a request id is what
// /v1/feedback names, so a sequential one would let a tenant enumerate
// others' requests.
type IDs struct {
	block cipher.Block
	n     atomic.Uint64
}

// NewIDs makes a generator with a fresh key.
func NewIDs() *IDs {
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // the OS gave no randomness: nothing is safe
	}
	b, _ := aes.NewCipher(key[:])
	return &IDs{block: b}
}

// Next returns a fresh id, "req_" and 32 hex digits.
func (g *IDs) Next() string {
	var in, out [16]byte
	binary.BigEndian.PutUint64(in[8:], g.n.Add(1))
	g.block.Encrypt(out[:], in[:])
	var s [4 + 32]byte
	copy(s[:], "req_")
	hex.Encode(s[4:], out[:])
	return string(s[:])
}
