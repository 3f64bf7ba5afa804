package redisstate

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The replica directory: each replica's admin URL, announced with an
// expiry and renewed while it runs, so that a replica editing an image
// made elsewhere can ask the others for it (server.PeerChains) instead of
// every response writing its chain node to the store.

// Announce lists url in the directory until ttl from now.
func (s *Store) Announce(ctx context.Context, url string, ttl time.Duration) error {
	ctx, cancel, err := s.begin(ctx, "directory")
	if err != nil {
		return err
	}
	defer cancel()
	until := time.Now().Add(ttl).UnixMilli()
	if err := s.ap.ZAdd(ctx, s.o.Prefix+"replicas", redis.Z{Score: float64(until), Member: url}).Err(); err != nil {
		return s.fail(ctx, "directory", err)
	}
	return nil
}

// Withdraw takes url out of the directory (a replica stopping).
func (s *Store) Withdraw(ctx context.Context, url string) error {
	ctx, cancel, err := s.begin(ctx, "directory")
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.ap.ZRem(ctx, s.o.Prefix+"replicas", url).Err(); err != nil {
		return s.fail(ctx, "directory", err)
	}
	return nil
}

// Replicas are the URLs announced and not expired. Expired entries are
// dropped on the way.
func (s *Store) Replicas(ctx context.Context) ([]string, error) {
	ctx, cancel, err := s.begin(ctx, "directory")
	if err != nil {
		return nil, err
	}
	defer cancel()
	key, now := s.o.Prefix+"replicas", strconv.FormatInt(time.Now().UnixMilli(), 10)
	s.ap.ZRemRangeByScore(ctx, key, "-inf", "("+now)
	urls, err := s.ap.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: now, Max: "+inf"}).Result()
	if err != nil {
		return nil, s.fail(ctx, "directory", err)
	}
	return urls, nil
}
