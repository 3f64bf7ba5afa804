package dashboards

import "encoding/json"

// GrafanaDataSource is the plugin id of Grafana's ClickHouse data source.
const GrafanaDataSource = "grafana-clickhouse-datasource"

// Grafana returns the panels as a Grafana dashboard (import it; Grafana asks
// for the ClickHouse data source named by the DS_CLICKHOUSE input). Tenant
// and experiment are dashboard variables; the time range is Grafana's.
func Grafana(db string) ([]byte, error) {
	ds := map[string]any{"type": GrafanaDataSource, "uid": "${DS_CLICKHOUSE}"}
	variable := func(name, sql string) map[string]any {
		return map[string]any{
			"name": name, "label": name, "type": "query", "datasource": ds,
			"query": sql, "definition": sql, "refresh": 2, "includeAll": false,
			"current": map[string]any{"text": "All", "value": "All"},
		}
	}
	var panels []map[string]any
	for i, p := range Panels {
		typ, format := "timeseries", 0 // time series
		if p.Kind == Bars {
			typ, format = "barchart", 1 // table
		}
		custom := map[string]any{}
		if p.Normalize {
			custom["stacking"] = map[string]any{"mode": "percent", "group": "A"}
		}
		panels = append(panels, map[string]any{
			"id": i + 1, "type": typ, "title": p.Title, "datasource": ds,
			"gridPos": map[string]any{"x": (i % 2) * 12, "y": (i / 2) * 9, "w": 12, "h": 9},
			"targets": []map[string]any{{
				"refId": "A", "datasource": ds, "editorType": "sql", "queryType": "sql",
				"format": format, "rawSql": p.GrafanaSQL(db),
			}},
			"fieldConfig": map[string]any{"defaults": map[string]any{"custom": custom, "displayName": "${__field.labels}"}, "overrides": []any{}},
			"description": p.Unit,
		})
	}
	d := map[string]any{
		"__inputs": []map[string]any{{
			"name": "DS_CLICKHOUSE", "label": "ClickHouse", "type": "datasource",
			"pluginId": GrafanaDataSource, "pluginName": "ClickHouse",
		}},
		"title": "routelab", "uid": "routelab-overview", "tags": []string{"routelab"},
		"schemaVersion": 39, "version": 1, "editable": true,
		"time":     map[string]any{"from": "now-24h", "to": "now"},
		"timezone": "utc",
		"templating": map[string]any{"list": []any{
			variable("tenant", "SELECT 'All' UNION ALL SELECT DISTINCT tenant FROM "+db+".decisions"),
			variable("experiment", "SELECT 'All' UNION ALL SELECT DISTINCT arrayJoin(arm_experiments) FROM "+db+".decisions"),
		}},
		"panels": panels,
	}
	return json.MarshalIndent(d, "", "  ")
}
