"""django-affect's ``affect.views``, which defines nothing: the layer has no views of its own.
It exists so that code importing the module keeps working under the import alias."""
