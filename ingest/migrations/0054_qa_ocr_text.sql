-- What the legibility check's OCR read from the image (events.QAResult
-- OCRText; the check itself is check "text" in the arrays, its value the
-- score). Empty for prompts that ask for no text.
-- Re-running is harmless: a duplicate column is "already done" (18.16 has
-- no ADD COLUMN IF NOT EXISTS). Portable across 18.16 and current releases.

ALTER TABLE ${db}.qa_results ADD COLUMN ocr_text String AFTER live_request_id
