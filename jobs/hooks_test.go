package jobs

// SetGrantBatch makes runs write their grants every n decided, for the tests of batched writes,
// and returns what restores the batch size.
func SetGrantBatch(n int) (restore func()) {
	old := grantBatch
	grantBatch = n
	return func() { grantBatch = old }
}
