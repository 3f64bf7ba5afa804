package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// signer makes and checks expiring image links. Links are signed with
// secret and accepted under secret or previous, so a secret can be rotated
// without breaking the links already handed out: deploy the new secret
// with the old one as previous, and drop previous once the links signed
// with it have expired (the link TTL).
type signer struct {
	secret   []byte
	previous []byte
	ttl      time.Duration
}

func (s signer) sig(id string, exp int64) string { return sign(s.secret, id, exp) }

func sign(secret []byte, id string, exp int64) string {
	m := hmac.New(sha256.New, secret)
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
	if hmac.Equal([]byte(sig), []byte(s.sig(id, exp))) {
		return true
	}
	return len(s.previous) > 0 && hmac.Equal([]byte(sig), []byte(sign(s.previous, id, exp)))
}
