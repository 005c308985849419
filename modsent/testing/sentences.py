"""Real sentences in a few languages and scripts: what a language identifier must get right."""

LANGUAGE_ID_SENTENCES = {
    "eng_Latn": ["The children are playing football in the park after school.",
                 "Please save your changes before closing the window."],
    "deu_Latn": ["Die Kinder spielen nach der Schule im Park Fußball.",
                 "Bitte speichern Sie Ihre Änderungen, bevor Sie das Fenster schließen."],
    "rus_Cyrl": ["Дети играют в футбол в парке после школы.",
                 "Пожалуйста, сохраните изменения перед закрытием окна."],
}
JAPANESE_SENTENCE = "子供たちは放課後に公園でサッカーをしています。"  # a language the tiny modular models lack
