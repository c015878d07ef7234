"""The web shell: layout, shared components, platform pages, static assets."""
