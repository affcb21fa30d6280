package decoder

// SetAuditClock makes d read the time, in seconds, from now.
func SetAuditClock(d *Audit, now func() int64) { d.now = now }
