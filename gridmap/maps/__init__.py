"""Map rendering with folium: pages built server-side from aggregates, every asset served locally."""
