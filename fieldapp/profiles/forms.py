from functools import cache

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField, TextAreaField

from ..identification import Section


@cache
def _section_form_class(section: Section) -> type[FlaskForm]:
    # Built from the section's declaration, so the labels and hints are written once.
    fields = {f.name: (TextAreaField if f.multiline else StringField)(f.label, description=f.hint)
              for f in section.fields}
    return type(f"{section.key.title()}Form", (FlaskForm,), fields)


def section_form(section: Section, **kwargs) -> FlaskForm:
    return _section_form_class(section)(**kwargs)


class PhotoForm(FlaskForm):
    # Two inputs: ``capture`` opens the camera at once on a phone, but it also hides the gallery,
    # so a saved photo needs an input without it.
    camera = FileField("Take a photo", render_kw={"accept": "image/*", "capture": "environment"})
    photo = FileField("Or choose a saved photo", render_kw={"accept": "image/*"})
    taken_on = StringField("Date the photo was taken", render_kw={"type": "date"})


class PacketDetailsForm(FlaskForm):
    last_seen_at = StringField("When the child was last seen", render_kw={"type": "datetime-local"})
    last_seen_place = TextAreaField("Where the child was last seen")
    clothing = TextAreaField("Clothing when last seen",
                             description="Tops, bottoms, shoes, coat, bag; colours and logos.")
    circumstances = TextAreaField("Circumstances of the disappearance",
                                  description="What happened before the child left, and with whom.")
