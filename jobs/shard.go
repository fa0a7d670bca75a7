package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard selects the accounts a run processes when one night is spread over several pods: those
// whose account id hashes to Index of Count (in PostgreSQL, creditrecon_shard(account, Count)).
// An account is the referrer in the Referral Program, the template in the Template Program and
// the referred user in the Serverless Referral Program: keys that never move, so every grant of
// an account is made by the same shard. The zero value, like 0/1, is every account.
type Shard struct {
	Index, Count int
}

// ParseShard parses "I/N" (0 <= I < N).
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	index, err1 := strconv.Atoi(i)
	count, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard: want INDEX/COUNT such as 0/4, got %q", s)
	}
	sh := Shard{Index: index, Count: count}
	return sh, sh.Validate()
}

// Validate reports a shard outside 0 <= Index < Count.
func (s Shard) Validate() error {
	if s == (Shard{}) {
		return nil
	}
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard: index must be in [0, count) and count at least 1, got %d/%d", s.Index, s.Count)
	}
	return nil
}

// Sharded says whether the shard is a proper part of the accounts (Count > 1).
func (s Shard) Sharded() bool { return s.Count > 1 }

// String is "I/N", or "" for every account.
func (s Shard) String() string {
	if !s.Sharded() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// shardOf is the shard of a ledger row's shard_index and shard_count (NULL: every account).
func shardOf(index, count *int) Shard {
	if index == nil || count == nil {
		return Shard{}
	}
	return Shard{Index: *index, Count: *count}
}

// ShardsIncompleteError says that a cutoff's newest runs are shards and some of them have not
// committed yet, so its reports would miss accounts.
type ShardsIncompleteError struct {
	Count   int
	Missing []int
}

func (e *ShardsIncompleteError) Error() string {
	return fmt.Sprintf("the newest runs of this cutoff are shards of %d, and shards %v have not committed since: "+
		"the reports are written when every shard has run (creditrecon run --shard I/%d)", e.Count, e.Missing, e.Count)
}
