// The "Contents" button in the article header opens the page's table of contents. pydata-sphinx-theme binds its
// drawer to the first `.secondary-toggle` of the page only, the navbar's, which sphinx-book-theme hides: forward the
// article header's click to it. (The drawer is how the contents show below 1600 px: nbs/styles.css.)
document.addEventListener("DOMContentLoaded", () => {
  const [bound, ...others] = document.querySelectorAll(".secondary-toggle");
  others.forEach((b) => b.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); bound.click(); }));
});
