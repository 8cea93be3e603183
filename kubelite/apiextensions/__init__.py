"""apiextensions: CustomResourceDefinitions and the custom resources they define.

Upstream runs this as a separate API server (apiextensions-apiserver) chained in front of
kube-apiserver; here it is a layer inside our one API server:

- ``info``: ``CustomResourceInfo``, a catalogue entry built from one served version of an
  established CRD (schema, printer columns, scale paths ride along with it);
- ``crdvalidation``: validation of the CRD object itself, with upstream's messages;
- ``schema``: structural schemas: validation, defaulting and pruning of custom resources;
- ``manager``: the in-process controllers upstream runs beside its handler (naming,
  establishing, finalizing): they keep the dynamic part of the resource catalogue in
  step with the stored CRDs and delete a CRD's objects before the CRD itself goes;
- ``printing`` and ``openapi``: additionalPrinterColumns Tables and the published schemas.
"""
