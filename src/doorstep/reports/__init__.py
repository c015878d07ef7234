"""Reports (seed 002): documents built from templates and valuation data, rendered to PDF, DOCX,
XLSX, PPTX and JSON."""
