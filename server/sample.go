package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// signer makes and checks expiring image links.
type signer struct {
	secret []byte
	ttl    time.Duration
}

func (s signer) sig(id string, exp int64) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// link returns the query string that authorises GET /v1/images/{id}.
func (s signer) link(id string, now time.Time) string {
	exp := now.Add(s.ttl).Unix()
	return "exp=" + strconv.FormatInt(exp, 10) + "&sig=" + s.sig(id, exp)
}

func (s signer) valid(id, expStr, sig string, now time.Time) bool {
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || now.Unix() > exp || len(s.secret) == 0 {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(s.sig(id, exp)))
}
