package pgcdctest

// ExitCode is the exit code of a server process that has ended (see
// Exited), or -1 while it runs or when a signal killed it.
func (s *Server) ExitCode() int {
	if !s.Exited() || s.cmd.ProcessState == nil {
		return -1
	}
	return s.cmd.ProcessState.ExitCode()
}
