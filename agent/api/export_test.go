package api

import "maps"

// RoutedParams are the patterns the server routes (route), each with the
// query parameters it takes, for the tests that walk every endpoint.
func (s *Server) RoutedParams() map[string][]string { return maps.Clone(s.params) }
