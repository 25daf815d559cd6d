"Heading ids for the Sphinx site, made the way pandoc (so Quarto) makes them, so nbdev's symbol links resolve."
import re

def pandoc_slug(text:str)->str:
    """The id of a heading `text`: pandoc's rule (punctuation other than `_ - .` dropped, spaces to hyphens, lower case,
    what comes before the first letter dropped), except that a leading underscore stays. nbdev links a symbol to
    `page.html#name.lower()` (`memory.html#estimate_memory`, `settings.html#runsettings.replace`,
    `memory.html#_layer`); pandoc would drop the underscore of a private name and break that last kind of link."""
    s = re.sub(r'[^\w\s.-]', '', text).strip().lower()
    s = re.sub(r'^[^a-z_]+', '', re.sub(r'\s', '-', s))
    return s or 'section'
