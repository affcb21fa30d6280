package decoder

// NewDropMonKallsyms returns a drop monitor decoder that names code
// addresses from the kallsyms file at path, for tests.
func NewDropMonKallsyms(path string, interfaces bool) *DropMon {
	d := NewDropMon(interfaces)
	d.syms.path = path
	return d
}

// SetAuditClock makes d read the time, in seconds, from now.
func SetAuditClock(d *Audit, now func() int64) { d.now = now }
