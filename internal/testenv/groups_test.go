package testenv

import "testing"

func TestUsersockGroupUnique(t *testing.T) {
	seen := map[uint32]bool{}
	for range 5 {
		g := UsersockGroup(t)
		if g == 0 || g >= IdleUsersockGroup || seen[g] {
			t.Fatalf("group %d handed out (seen before: %v), want a new one in 1-%d", g, seen[g], IdleUsersockGroup-1)
		}
		seen[g] = true
	}
}
