from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import PasswordField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..vocabulary import ROLES


class NewUserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)],
                           render_kw={"autocapitalize": "none", "autocomplete": "off"})
    display_name = StringField("Full name", validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=[SelectChoice(k, label) for k, label in ROLES.items()])
    team = StringField("Team", validators=[Length(max=120)],
                       description="Required for caseworkers and supervisors; a new name creates the team.")
    phone = StringField("Work phone", validators=[Length(max=40)])
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})


class TeamForm(FlaskForm):
    team = StringField("Team", validators=[Length(max=120)])


class ReassignForm(FlaskForm):
    caseworker = SelectField("New caseworker", coerce=int)
    note = TextAreaField("Handover note", validators=[Length(max=2000)])


class RosterForm(FlaskForm):
    file = FileField("Roster CSV file", validators=[FileRequired()])


class HistoryForm(FlaskForm):
    file = FileField("History file (JSON Lines)", validators=[FileRequired()])
