package lokiapi

import "net/http"

func (a *API) detectedFields(r *http.Request) (any, error) {
	return map[string]any{"fields": []any{}, "limit": 1000}, nil
}

func (a *API) detectedLabels(r *http.Request) (any, error) {
	return map[string]any{"detectedLabels": []any{}}, nil
}

func (a *API) patterns(r *http.Request) (any, error) {
	return dataResponse{"success", []any{}}, nil
}
