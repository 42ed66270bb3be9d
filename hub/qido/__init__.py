"""The hub as a DICOMweb QIDO-RS origin server: query parameters to cohort filters, and
cohort answers to DICOM JSON (routes in `hub.api.qido`)."""
