package redisstate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/routelab/routelab/server"
)

var _ server.IdempotencyStore = (*Store)(nil)

// A record is 'F' + hex sum + the owner's token while in flight, 'D' +
// hex sum + the response once done.
const sumLen = 64

// claimScript claims KEYS[1] for ARGV[1] (hex sum) and ARGV[2] (token) for
// ARGV[3] ms, or returns the record holding it.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], 'F' .. ARGV[1] .. ARGV[2], 'PX', ARGV[3])
return false`)

// finishScript replaces the owner's claim (ARGV[1], the whole in-flight
// record) with ARGV[2] for ARGV[3] ms, or deletes it when ARGV[2] is
// empty; a record that is no longer the claim (it expired, another took
// the key) is left alone.
var finishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`)

func (s *Store) idemKey(key string) string {
	h := sha256.Sum256([]byte(key)) // keys are the client's: bounded length, no separators
	return s.o.Prefix + "idem:" + hex.EncodeToString(h[:])
}

// Begin implements server.IdempotencyStore. A key in flight on any
// replica is polled until it is done, gone (its owner failed or died: the
// key is claimed again) or ctx ends.
func (s *Store) Begin(ctx context.Context, key string, sum [32]byte) (server.IdemClaim, error) {
	hsum := hex.EncodeToString(sum[:])
	var tb [16]byte
	_, _ = rand.Read(tb[:])
	token := hex.EncodeToString(tb[:])
	wait := 5 * time.Millisecond
	for {
		v, err := s.claim(ctx, key, hsum, token)
		if err != nil {
			return server.IdemClaim{}, err
		}
		if v == "" {
			return server.IdemClaim{Owner: true, Token: "F" + hsum + token, Sum: sum}, nil
		}
		var first [32]byte
		if len(v) < 1+sumLen {
			return server.IdemClaim{}, errors.New("malformed idempotency record")
		}
		if _, err := hex.Decode(first[:], []byte(v[1:1+sumLen])); err != nil {
			return server.IdemClaim{}, errors.New("malformed idempotency record")
		}
		if first != sum {
			return server.IdemClaim{Sum: first}, nil
		}
		if v[0] == 'D' {
			return server.IdemClaim{Sum: first, Resp: []byte(v[1+sumLen:])}, nil
		}
		select {
		case <-ctx.Done():
			return server.IdemClaim{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

func (s *Store) claim(ctx context.Context, key, hsum, token string) (string, error) {
	cctx, cancel, err := s.begin(ctx, "idempotency_begin")
	if err != nil {
		return "", err
	}
	defer cancel()
	v, err := claimScript.Run(cctx, s.ap, []string{s.idemKey(key)}, hsum, token, s.o.InFlightTTL.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", s.fail(cctx, "idempotency_begin", err)
	}
	return v, nil
}

// Finish implements server.IdempotencyStore.
func (s *Store) Finish(ctx context.Context, key string, c server.IdemClaim, resp []byte) error {
	ctx, cancel, err := s.begin(ctx, "idempotency_finish")
	if err != nil {
		return err
	}
	defer cancel()
	rec := ""
	if resp != nil {
		rec = "D" + c.Token[1:1+sumLen] + string(resp)
	}
	if err := finishScript.Run(ctx, s.ap, []string{s.idemKey(key)}, c.Token, rec, s.o.IdempotencyTTL.Milliseconds()).Err(); err != nil {
		return s.fail(ctx, "idempotency_finish", err)
	}
	return nil
}
