# Is the plug-in registered, under which menu, with which label, help and arguments? Both procedures.
def procedure_facts(name):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    facts = {"found": procedure is not None}
    if procedure is None:
        return facts
    facts["menu_paths"] = list(procedure.get_menu_paths())
    facts["menu_label"] = procedure.get_menu_label()
    facts["blurb"] = procedure.get_blurb()
    facts["help"] = procedure.get_help()
    facts["help_id"] = procedure.get_help_id()
    facts["image_types"] = procedure.get_image_types()
    facts["arguments"] = [spec.name for spec in procedure.get_arguments()]
    specs = {}
    for spec in procedure.get_arguments():
        entry = {"nick": spec.get_nick(), "blurb": spec.get_blurb()}
        default = spec.get_default_value()
        if isinstance(default, (int, float, str)):
            entry["default"] = default
        for bound in ("minimum", "maximum"):
            if hasattr(spec, bound):
                entry[bound] = getattr(spec, bound)
        if isinstance(spec, Gimp.ParamChoice):
            choice = Gimp.param_spec_choice_get_choice(spec)
            entry["choices"] = {nick: choice.get_label(nick) for nick in choice.list_nicks()}
        specs[spec.name] = entry
    facts["specs"] = specs
    return facts


facts = dict(procedure_facts(PROCEDURE), gimp_version=Gimp.version())
facts["hints_procedure"] = procedure_facts("plug-in-gimp-colorize-hints-layer")
emit(facts)
