# Is the plug-in registered, under which menu, with which arguments?
procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
facts = {"gimp_version": Gimp.version(), "found": procedure is not None}
if procedure is not None:
    facts["menu_paths"] = list(procedure.get_menu_paths())
    facts["arguments"] = [spec.name for spec in procedure.get_arguments()]
    facts["image_types"] = procedure.get_image_types()
emit(facts)
