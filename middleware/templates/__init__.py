"""Protected templates (ISO/IEC 24745): keyed, per-application transforms of embeddings whose
outputs can be compared but are meant not to be inverted or linked across keys.

Numpy only. One module per scheme, identical signatures (`_base.TemplateScheme`):

    biohash      BioHashing: orthonormal projection + sign; Hamming
    iom          Index-of-Max hashing (GRP); collision rate
    polyprotect  PolyProtect: overlapping-window polynomials; cosine
    sap          Scale-And-Perturb (DCPE); cosine
    projection   the WEAK control: projection without binarisation (leaks; for the harness)

    from featurelock.middleware.templates import generate_secret, make_template_scheme, Gallery
    scheme = make_template_scheme("biohash", generate_secret(), dim=128)
    gallery = Gallery(scheme); gallery.enrol(["alice"], features)

What each one protects, and what it does not, is measured by `featurelock templates eval`.
"""

from ._base import SECRET_SIZE, TemplateScheme, generate_secret
from ._registry import make_template_scheme, register, template_scheme_class, template_schemes
from .gallery import Gallery, threshold_at_fmr

__all__ = ["SECRET_SIZE", "TemplateScheme", "generate_secret", "make_template_scheme", "register",
           "template_scheme_class", "template_schemes", "Gallery", "threshold_at_fmr"]
