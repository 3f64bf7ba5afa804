package console

import "golang.org/x/crypto/bcrypt"

// The tests hash and compare passwords at bcrypt's cheapest cost: what
// they check (a wrong password fails, an unknown name costs a comparison)
// does not depend on it, and at the default cost the login tests took
// minutes under -race.
func init() { passwordCost = bcrypt.MinCost }

// SetPasswordCost sets the bcrypt cost until the returned func restores it
// (for the test that needs the comparison to dominate a login's time).
func SetPasswordCost(cost int) (restore func()) {
	prev := passwordCost
	passwordCost = cost
	return func() { passwordCost = prev }
}
